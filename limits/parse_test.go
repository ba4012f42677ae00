package limits

import (
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
		err  bool
	}{
		{in: "4/s", want: Rate{Requests: 4, PeriodSeconds: 1}},
		{in: "100/m", want: Rate{Requests: 100, PeriodSeconds: 60}},
		{in: "100/min", want: Rate{Requests: 100, PeriodSeconds: 60}},
		{in: "5000/h", want: Rate{Requests: 5000, PeriodSeconds: 3600}},
		{in: " 7/S ", want: Rate{Requests: 7, PeriodSeconds: 1}},
		{in: "5", err: true},
		{in: "0/s", err: true},
		{in: "-3/s", err: true},
		{in: "5/d", err: true},
		{in: "5/", err: true},
		{in: "/s", err: true},
		{in: "1.5/s", err: true},
		{in: "1000000001/s", err: true},
		{in: "99999999999999999999/s", err: true},
	} {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseQuota(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Quota
		err  bool
	}{
		{in: "1000/day", want: Quota{Requests: 1000, Period: PeriodDay}},
		{in: "5/month", want: Quota{Requests: 5, Period: PeriodMonth}},
		{in: "5/Month", want: Quota{Requests: 5, Period: PeriodMonth}},
		{in: "5/week", err: true},
		{in: "0/day", err: true},
		{in: "day", err: true},
		{in: "x/day", err: true},
	} {
		got, err := ParseQuota(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseQuota(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestRateValidateAndString(t *testing.T) {
	for _, tc := range []struct {
		r    Rate
		ok   bool
		text string
	}{
		{Rate{Requests: 4, PeriodSeconds: 1, Burst: 8}, true, "4/s burst 8"},
		{Rate{Requests: 100, PeriodSeconds: 60}, true, "100/m"},
		{Rate{Requests: 100, PeriodSeconds: 3600, Burst: 100}, true, "100/h"},
		{Rate{Requests: 0, PeriodSeconds: 1}, false, ""},
		{Rate{Requests: 1, PeriodSeconds: 2}, false, ""},
		{Rate{Requests: 1, PeriodSeconds: 1, Burst: -1}, false, ""},
	} {
		if err := tc.r.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok %v", tc.r, err, tc.ok)
		}
		if tc.ok && tc.r.String() != tc.text {
			t.Errorf("%+v.String() = %q, want %q", tc.r, tc.r.String(), tc.text)
		}
	}
}

func TestQuotaWindow(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 0, 0, time.FixedZone("x", -5*3600)) // 2027-01-01 04:59 UTC
	for _, tc := range []struct {
		period     string
		start, end time.Time
	}{
		{PeriodDay, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)},
		{PeriodMonth, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)},
	} {
		s, e := Quota{Requests: 1, Period: tc.period}.Window(at)
		if !s.Equal(tc.start) || !e.Equal(tc.end) {
			t.Errorf("%s window of %v = %v..%v, want %v..%v", tc.period, at, s, e, tc.start, tc.end)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"4/s", "100/m", "5/h", "0/s", "x", "1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.Validate() != nil {
			t.Fatalf("ParseRate(%q) = %+v, which does not validate", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q).String() = %q does not read back: %+v, %v", s, r.String(), back, err)
		}
	})
}

func FuzzParseQuota(f *testing.F) {
	for _, s := range []string{"1000/day", "5/month", "0/day", "x/week"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuota(s)
		if err != nil {
			return
		}
		if q.Validate() != nil {
			t.Fatalf("ParseQuota(%q) = %+v, which does not validate", s, q)
		}
		if back, err := ParseQuota(q.String()); err != nil || back != q {
			t.Fatalf("ParseQuota(%q).String() = %q does not read back", s, q.String())
		}
	})
}
