FROM scratch
WORKDIR /app
WORKDIR other
