module github.com/dynometrics/dynometrics/e2e

go 1.26.0

require github.com/dynometrics/dynometrics v0.0.0

replace github.com/dynometrics/dynometrics => ../
