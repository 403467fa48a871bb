# Multi-stage: a builder stage turns sources into a bundle; the final image is FROM scratch.
ARG BASE
FROM ${BASE} AS builder
WORKDIR /src
COPY src/ ./
RUN mkdir -p /out/lib && for f in *.txt; do sha256sum "$f" >> /out/SUMS; gzip -c "$f" > "/out/lib/$f.gz"; done
RUN cd /out && tar cf /out/bundle.tar lib SUMS && dd if=/dev/urandom of=/out/blob.bin bs=1M count=8 2>/dev/null

FROM scratch
COPY --from=builder /out/bundle.tar /out/blob.bin /app/
COPY --from=builder /out/SUMS /app/SUMS
