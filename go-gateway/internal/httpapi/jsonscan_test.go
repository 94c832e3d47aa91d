package httpapi

import (
	"encoding/json"
	"testing"
)

// The scanner agrees with encoding/json on what is a JSON number and what
// is a well-formed string (its only disagreement, on text that is not
// Unicode, is tested in decode_test.go).
func TestScannerAgreesWithEncodingJSONOnSyntax(t *testing.T) {
	numbers := []string{"0", "-0", "7", "-12", "1.5", "1e3", "1E+3", "2.5e-07", "01", "-", "1.", "1e", "1e+", ".5", "+1", "--1", "0x10", "1.e3"}
	for _, n := range numbers {
		s := scanner{data: []byte(n)}
		_, err := s.number()
		ok := err == nil && s.atEnd()
		if want := json.Valid([]byte(n)); ok != want {
			t.Errorf("number %q: scanner %v, encoding/json %v", n, ok, want)
		}
	}
	strs := []string{`""`, `"a"`, `"\n"`, `"\u00e9"`, `"\uD83D\uDE00"`, `"\x"`, `"\u12"`, `"\u12G4"`, `"a`, `"\"`, "\"\t\"", `"\/"`, `"é"`}
	for _, str := range strs {
		s := scanner{data: []byte(str)}
		_, err := s.str()
		ok := err == nil && s.atEnd()
		if want := json.Valid([]byte(str)); ok != want {
			t.Errorf("string %s: scanner %v (%v), encoding/json %v", str, ok, err, want)
		}
	}
	for _, lit := range []string{"true", "false", "null", "tru", "nul", "falsey"} {
		s := scanner{data: []byte(lit)}
		word := map[byte]string{'t': "true", 'f': "false", 'n': "null"}[lit[0]]
		err := s.literal(word)
		ok := err == nil && s.atEnd()
		if want := json.Valid([]byte(lit)); ok != want {
			t.Errorf("literal %s: scanner %v, encoding/json %v", lit, ok, want)
		}
	}
}
