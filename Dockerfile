# A static instachat binary on a distroless base. Written, not run: no
# Docker engine runs on the machines this project is built on.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# modernc.org/sqlite is pure Go, so the binary needs no cgo and no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/instachat ./cmd/instachat

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/instachat /instachat
ENV INSTACHAT_ADDR=:8080 INSTACHAT_DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["/instachat"]
CMD ["serve"]
