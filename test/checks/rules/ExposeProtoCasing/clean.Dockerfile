FROM scratch
EXPOSE 80/tcp 53/udp
