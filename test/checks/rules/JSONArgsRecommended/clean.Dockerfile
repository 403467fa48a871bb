FROM scratch
SHELL ["/bin/sh", "-c"]
CMD echo hi
ENTRYPOINT ["/app"]
