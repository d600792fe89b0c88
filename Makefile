# minik8s — build, test and run a small Kubernetes-style cluster.
GO      ?= go
BIN     := bin
DATA    ?= /var/lib/minik8s
PKGS    := ./...

.PHONY: build test test-unit test-e2e bench up down clean fmt vet

build: ## build every binary into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

test: ## unit + integration tests (real embedded etcd); what CI runs
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m $(PKGS)

test-e2e: build ## end-to-end tests: kubelet on real containerd/CNI, proxy with real iptables traffic (root)
	$(GO) test -count=1 -tags e2e -timeout 30m ./e2e/...

bench: ## print apiserver throughput/latency numbers
	$(GO) run ./hack/bench-apiserver

up: ## install deps, build, start the cluster in the background (as root)
	./hack/up

down: ## stop the cluster started by `make up`
	./hack/down

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
