module langfuse-k8s-cluster/standin

go 1.26.8

require github.com/hashicorp/terraform-plugin-go v0.31.0 // indirect
