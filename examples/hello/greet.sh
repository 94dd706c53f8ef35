#!/bin/sh
echo "$GREETING @WHO@: $(cat /etc/example/info)"
