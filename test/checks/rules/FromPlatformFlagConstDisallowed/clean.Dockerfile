FROM --platform=linux/arm64 scratch AS build-arm64
