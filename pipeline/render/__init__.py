"""The offline render: the real Pulumi program run under Pulumi's mocks, its
resources written as Kubernetes manifests and a resource list."""
