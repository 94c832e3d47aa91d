// Package testsupport holds the gateway's test doubles: fakecore (a
// scriptable EmbeddingService with the real gRPC health server) and
// fakecollector (an OTLP/gRPC trace receiver). Only _test.go files import
// them; TestBinariesDoNotLinkTestSupport keeps it that way, so nothing a
// user runs can reach a fake.
package testsupport
