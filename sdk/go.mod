module github.com/latchhq/latch/sdk

go 1.26.8

require github.com/go-jose/go-jose/v4 v4.1.8
