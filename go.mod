module slewd

go 1.26.0

require (
	github.com/beevik/nts v0.3.2
	github.com/secure-io/siv-go v0.0.0-20180922214919-5ff40651e2c4
	golang.org/x/sys v0.49.0
)

require github.com/aead/cmac v0.0.0-20160719120800-7af84192f0b1 // indirect

require (
	github.com/beevik/ntp v1.6.0
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/urfave/cli/v2 v2.27.7
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	golang.org/x/net v0.59.0 // indirect
)
