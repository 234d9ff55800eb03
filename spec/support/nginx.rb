# frozen_string_literal: true

module Support
  # nginx as the reverse proxy in front of a server, started through the
  # Servers harness (so it is stopped and cleaned up with the rest).
  module Nginx
    # nginx in front of `upstream` (a server on a Unix socket), as deployed.
    def start_nginx(upstream)
      dir = server_dir
      port = free_port
      File.write(File.join(dir, "nginx.conf"), nginx_config(port, upstream.socket))
      start_server(dir, port, gem: false, command: [],
                              program: [executable("nginx"), "-p", dir, "-c", "nginx.conf", "-e", "error.log"])
    end

    private

    # One process in the foreground, everything under its prefix directory.
    # nginx speaks HTTP/1.0 to the upstream and reads its response until EOF.
    def nginx_config(port, socket)
      <<~CONFIG
        daemon off;
        master_process off;
        pid nginx.pid;
        error_log error.log;
        events { worker_connections 64; }
        http {
          access_log off;
          client_body_temp_path body; proxy_temp_path proxy; fastcgi_temp_path fastcgi;
          uwsgi_temp_path uwsgi; scgi_temp_path scgi;
          upstream app { server unix:#{socket}; }
          server {
            listen 127.0.0.1:#{port};
            location / { proxy_pass http://app; proxy_read_timeout 30s; }
          }
        }
      CONFIG
    end
  end
end
