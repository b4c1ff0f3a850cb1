/* nginxkind.h - the nginx scrape (probes/scrape.h): one GET of a stub_status page
 * (`location /stub_status { stub_status; }`) over HTTP(S), parsed and named by
 * probes/nginx.h (nginx_connections_*, nginx_http_requests_total, as
 * nginx-prometheus-exporter names them). The page must parse completely or the run fails
 * with the parser's line, column and reason. The kind has no options.
 */
#ifndef LBW_NGINXKIND_H
#define LBW_NGINXKIND_H

#include "probes/scrape.h"

#define LBW_NGINX_ANSWER_MAX (64u << 10)   /* a stub_status page is about 100 bytes */

extern const struct lbw_scrape_kind lbw_nginx_kind;

#endif
