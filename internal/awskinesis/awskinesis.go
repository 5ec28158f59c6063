// Package awskinesis builds the Kinesis client the source and sink share:
// region, endpoint override, and credentials from the standard AWS chain or
// static keys.
package awskinesis

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Credentials are static keys; without them the standard AWS chain is used
// (environment, shared config, web identity, instance role).
type Credentials struct {
	AccessKeyID     string `yaml:"access_key_id" required:"true"`
	SecretAccessKey string `yaml:"secret_access_key" required:"true"`
	SessionToken    string `yaml:"session_token"`
}

// Client returns a Kinesis client for region, with endpoint overriding the
// AWS one when set (kinesalite, LocalStack, VPC endpoints).
func Client(ctx context.Context, region, endpoint string, creds *Credentials) (*kinesis.Client, error) {
	opts := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if creds != nil {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		// The runner and the readers retry with their own backoff.
		o.RetryMaxAttempts = 1
	}), nil
}
