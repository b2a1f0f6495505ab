package bigtest

import "testing"

func TestPeakRSSMiB(t *testing.T) {
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = 1
	}
	if got := PeakRSSMiB(t); got < 64 {
		t.Fatalf("peak RSS %d MiB after touching 64 MiB", got)
	}
	_ = big[len(big)-1]
}

func TestEnvInt(t *testing.T) {
	t.Setenv("PLTEST_BIGTEST_N", "")
	if got := EnvInt(t, "PLTEST_BIGTEST_N", 7); got != 7 {
		t.Fatalf("unset: got %d, want 7", got)
	}
	t.Setenv("PLTEST_BIGTEST_N", "42")
	if got := EnvInt(t, "PLTEST_BIGTEST_N", 7); got != 42 {
		t.Fatalf("got %d, want 42", got)
	}
}

func TestReportLine(t *testing.T) {
	out := "=== RUN TestX\nreport: files=3 maxrss_mb=10\n--- PASS\n"
	if got := ReportLine(t, out); got != "files=3 maxrss_mb=10" {
		t.Fatalf("got %q", got)
	}
}
