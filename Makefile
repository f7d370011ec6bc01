# The two commands: `make up` runs the platform, `make test` runs every test.
.PHONY: up test
up:
	scripts/up.sh
test:
	scripts/test.sh
