// Package deploy holds no code: it is the home of the container image, the
// Kubernetes manifests, the autoscaling, alerting and dashboard files that run
// sluice in production, and of the test that renders and checks them all
// (deploy_test.go, and connectors_test.go for the connectors). See
// docs/operations.md.
package deploy
