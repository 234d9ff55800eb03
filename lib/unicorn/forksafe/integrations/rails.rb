# frozen_string_literal: true

require_relative "../integrations"

module ForkSafe
  module Integrations # rubocop:disable Style/Documentation (see integrations.rb)
    # Rails 6.1 on: config.forksafe and Rails.logger (see railtie.rb). The
    # Railtie subclasses Rails::Railtie, so it is defined once that class
    # is: the gem may be required before Rails (RUBYOPT, a server's config
    # file) or after (Bundler.require in config/application.rb). Either
    # way that is before the app's class body, which may set
    # config.forksafe, is run.
    module Rails
      def self.version
        "rails #{::Rails.version}"
      end

      # Prepended to Rails::Railtie, which it hooks no method of: being
      # prepended is the moment the class exists.
      module Railtie
        WITHOUT_IT = "config.forksafe is not defined and the gem does not log through Rails.logger"

        def self.prepended(_railtie)
          super
          require_relative "../railtie"
        end

        # A server may serve before it loads the app (unicorn without
        # preload_app), and so Rails: in a bundle that has Rails, the
        # Railtie is still waited for then.
        def self.waits_past_serving?
          Gem.loaded_specs.key?("railties")
        end
      end
    end

    install("Rails::Railtie", Rails::Railtie, server: Rails)
  end
end
