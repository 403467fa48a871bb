FROM scratch AS builder
