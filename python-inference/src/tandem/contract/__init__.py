"""Generated stubs of the shared contract (proto/tandem/contract): run `make proto`."""
