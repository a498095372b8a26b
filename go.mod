module github.com/dynometrics/dynometrics

go 1.26.8

require (
	github.com/DataDog/sketches-go v1.4.8 // indirect
	github.com/kelseyhightower/envconfig v1.4.0 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/rcrowley/go-metrics v0.0.0-20250401214520-65e299d6c5c9 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
