# COPY-heavy app: ~10,000 files / ~200 MB of sources and assets onto busybox (the issue's context).
ARG BASE
FROM ${BASE}
ENV APP_HOME=/app \
    APP_ENV=production
WORKDIR /app
COPY package.json ./
COPY . .
ENV PORT=8080
EXPOSE 8080
CMD ["sh", "-c", "ls /app"]
