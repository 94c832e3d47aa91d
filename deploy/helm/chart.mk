# Helm chart, images and their tests (see deploy/helm/README.md).
