FROM scratch AS a
COPY --from=a secret.txt /
COPY app.txt /
