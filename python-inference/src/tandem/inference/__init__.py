"""Generated stubs of the shared contract (proto/tandem/inference): run `make proto`."""
