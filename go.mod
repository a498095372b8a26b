// +heroku install ./worker ./examples/...
module github.com/dynometrics/dynometrics

go 1.26.8

require (
	github.com/DataDog/sketches-go v1.4.8
	github.com/chromedp/chromedp v0.23.0
	github.com/kelseyhightower/envconfig v1.4.0
	github.com/klauspost/compress v1.20.4
	github.com/rcrowley/go-metrics v0.0.0-20250401214520-65e299d6c5c9
	google.golang.org/protobuf v1.36.11
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
)
