# Build a static binary, then ship it alone on distroless as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/mira-operator ./cmd/mira-operator

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/mira-operator /mira-operator
USER 65532:65532
ENTRYPOINT ["/mira-operator"]
