FROM scratch AS a
FROM scratch AS b
