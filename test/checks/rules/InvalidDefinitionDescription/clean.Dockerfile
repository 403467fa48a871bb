# check=experimental=InvalidDefinitionDescription
# build the stage that builds
FROM scratch AS build
# VERSION to use
ARG VERSION=1
