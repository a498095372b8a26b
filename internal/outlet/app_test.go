package outlet

import (
	"strings"
	"testing"
)

func TestPrefixFor(t *testing.T) {
	tests := []struct{ prefix, app, want, without string }{
		{"us-east.prod.{app}", "billing", "us-east.prod.billing", "us-east.prod"},
		{"{app}.prod", "billing", "billing.prod", "prod"},
		{"us-east.prod", "billing", "us-east.prod.billing", "us-east.prod"},
		{"", "billing", "billing", ""},
		{"{app}", "billing", "billing", ""},
		{"us-east.prod", "", "us-east.prod", "us-east.prod"},
		{"", "", "", ""},
	}
	for _, tc := range tests {
		if got := PrefixFor(tc.prefix, tc.app); got != tc.want {
			t.Errorf("PrefixFor(%q, %q) = %q, want %q", tc.prefix, tc.app, got, tc.want)
		}
		if got := PrefixWithoutApp(tc.prefix); got != tc.without {
			t.Errorf("PrefixWithoutApp(%q) = %q, want %q", tc.prefix, got, tc.without)
		}
	}
	f := PrefixCache("x.{app}", strings.ToUpper)
	if f("billing") != "X.BILLING" || f("shop") != "X.SHOP" || f("billing") != "X.BILLING" || f("") != "X.{APP}" {
		t.Error("PrefixCache")
	}
}
