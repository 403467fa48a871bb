FROM scratch
ENV A=b
LABEL x=y
