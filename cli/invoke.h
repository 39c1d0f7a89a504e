/* invoke.h — `berth invoke`: one InvokeEndpoint call through the router,
 * signed with SigV4 by libcurl (CURLOPT_AWS_SIGV4) as any SageMaker client
 * signs it. The key comes from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
 * else from the credentials file (--credentials PATH, default
 * /etc/berth/credentials; --key NAME, default the first key allowed to
 * invoke the endpoint); the region from AWS_REGION, AWS_DEFAULT_REGION,
 * else us-east-1. */
#ifndef BERTH_CLI_INVOKE_H
#define BERTH_CLI_INVOKE_H

/* argv[0] is "invoke". Returns the exit status. */
int cli_invoke(int argc, char **argv);

#endif
