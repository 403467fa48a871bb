# COPY-heavy app: ~5,000 files / ~100 MB of sources and assets onto busybox.
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
