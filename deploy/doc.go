// Package deploy holds what rehook is deployed with: the container image's
// Dockerfile and the Kubernetes manifests (the repository's top folder holds
// docker-compose.yml). It has no code; its tests check those files, since no
// container engine or cluster runs where the tests do.
package deploy
