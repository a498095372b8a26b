package promwrite

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestReceiverEchoesEverySecretForm: a receiver that refuses a batch (400,
// dropped and logged) and echoes each secret of the configuration in each
// form it can travel in never gets one into the log (issue 13 item 7).
func TestReceiverEchoesEverySecretForm(t *testing.T) {
	const pass, bearer, key, hdr = "p@ss/word+1", "eyJ.bearer/tok+en", "qu3ry-k3y", "x-api-key-value"
	jsonEsc := func(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) }
	secrets := map[string]Config{
		"password": {User: "tenant1", Password: pass},
		"bearer":   {BearerToken: bearer},
	}
	for name, cfg := range secrets {
		secret := cfg.Password + cfg.BearerToken
		forms := map[string]string{
			"raw":          secret,
			"base64 Basic": "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+secret)),
			"bearer":       "Bearer " + secret,
			"URL userinfo": "https://" + url.UserPassword(cfg.User, secret).String() + "@h/",
			"query":        "api_key=" + url.QueryEscape(secret),
			"JSON":         `{"auth":"` + jsonEsc(secret) + `"}`,
		}
		for form, echo := range forms {
			t.Run(name+"/"+form, func(t *testing.T) {
				rc, srv := startReceiver(t, 400)
				rc.body = "refused: " + echo + " key=" + key + " hdr=" + hdr
				cfg := cfg
				cfg.URL = srv.URL + "/api/v1/write?api_key=" + key
				cfg.Headers = map[string]string{"X-API-Key": hdr}
				o, logs := newTestOutlet(t, cfg)
				o.Write(bucket(t0, aggregate.Series{Name: "g", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 1}))
				closeOutlet(t, o)
				l := logs.String()
				if !strings.Contains(l, "refused: ") {
					t.Fatalf("the refusal was not logged:\n%s", l)
				}
				for _, leak := range []string{secret, url.QueryEscape(secret), jsonEsc(secret), key, hdr,
					base64.StdEncoding.EncodeToString([]byte(cfg.User + ":" + secret))} {
					if strings.Contains(l, leak) {
						t.Fatalf("log holds %q:\n%s", leak, l)
					}
				}
			})
		}
	}
}
