# Build a static binary, then ship it alone on distroless as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
# Stamped like `make build` does (make docker-build passes these).
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
    -ldflags="-s -w -X github.com/mira/mira-operator/internal/version.Version=${VERSION} -X github.com/mira/mira-operator/internal/version.Commit=${COMMIT} -X github.com/mira/mira-operator/internal/version.Date=${DATE}" \
    -o /out/mira-operator ./cmd/mira-operator

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/mira-operator /mira-operator
USER 65532:65532
ENTRYPOINT ["/mira-operator"]
