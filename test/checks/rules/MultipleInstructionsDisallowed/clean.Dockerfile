FROM scratch AS a
CMD ["a"]
FROM a
CMD ["b"]
