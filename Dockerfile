# A static instachat binary on a distroless base. Written, not run: no
# Docker engine runs on the machines this project is built on
# (deploy/compose_test.go checks what can be checked without one).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# modernc.org/sqlite is pure Go, so the binary needs no cgo and no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/instachat ./cmd/instachat
# The runtime image has no shell to make directories with: the embedded
# default's data directory is made here, in a tree copied onto the image's
# root, so that the directory itself is copied, with its owner.
RUN mkdir -p /out/rootfs/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/instachat /instachat
COPY --from=build --chown=nonroot:nonroot /out/rootfs/ /
ENV INSTACHAT_ADDR=:8080 INSTACHAT_DATA_DIR=/data
# docker run -v instachat-data:/data keeps the embedded database; a new
# named volume starts as this directory, owned by nonroot.
EXPOSE 8080
# No curl in distroless: the binary checks its own /healthz.
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 CMD ["/instachat", "healthcheck"]
ENTRYPOINT ["/instachat"]
CMD ["serve"]
