// Package deploy holds no code: its tests check the deployment files at the
// repository root (Dockerfile, .dockerignore, docker-compose.yml with its
// .env examples, render.yaml) without a container engine — by parsing them
// with the parsers Docker and Compose use, and by starting the binaries
// with exactly the environment the compose file gives them.
package deploy
