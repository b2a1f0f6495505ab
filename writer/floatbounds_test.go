package writer

import (
	"math"
	"testing"
)

func TestFloatBounds(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name        string
		in          []float64
		lo, hi      float64
		ok, sawNaN  bool
		negZeroLow  bool
		posZeroHigh bool
	}{
		{name: "empty"},
		{name: "only NaN", in: []float64{nan, nan}, sawNaN: true},
		{name: "NaN ignored", in: []float64{3, nan, -2, 7}, lo: -2, hi: 7, ok: true, sawNaN: true},
		{name: "zeros signed", in: []float64{0, 0}, lo: 0, hi: 0, ok: true, negZeroLow: true, posZeroHigh: true},
		{name: "negative zero max", in: []float64{-1, math.Copysign(0, -1)}, lo: -1, hi: 0, ok: true, posZeroHigh: true},
	} {
		lo, hi, ok, sawNaN := floatBounds(tc.in)
		if ok != tc.ok || sawNaN != tc.sawNaN || (ok && (lo != tc.lo || hi != tc.hi)) {
			t.Errorf("%s: floatBounds = %v, %v, %v, %v; want %v, %v, %v, %v", tc.name, lo, hi, ok, sawNaN, tc.lo, tc.hi, tc.ok, tc.sawNaN)
		}
		if tc.negZeroLow && !math.Signbit(lo) {
			t.Errorf("%s: a zero min must be -0", tc.name)
		}
		if tc.posZeroHigh && math.Signbit(hi) {
			t.Errorf("%s: a zero max must be +0", tc.name)
		}
	}
	if lo, hi, ok, _ := floatBounds([]float32{2.5, -1.5}); !ok || lo != -1.5 || hi != 2.5 {
		t.Errorf("float32: %v %v %v", lo, hi, ok)
	}
}
