# Two platforms (linux/amd64 + linux/arm64, the latter under QEMU): a small image with one RUN.
ARG BASE
FROM ${BASE}
COPY hello.txt /hello.txt
RUN uname -m > /arch && mkdir /files && for i in $(seq 1 300); do echo "$i" > /files/f$i; done && sha256sum /hello.txt > /hello.sum
CMD ["cat", "/arch"]
