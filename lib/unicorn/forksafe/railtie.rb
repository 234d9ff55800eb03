# frozen_string_literal: true

require "active_support/ordered_options"
require_relative "core"

module ForkSafe
  # In a Rails app: config.forksafe carries the settings of
  # ForkSafe.configure (config/application.rb or an environment's file), and
  # the gem logs through Rails.logger unless a logger was set. Loaded by
  # integrations/rails.rb when Rails is; nothing here runs outside Rails.
  class Railtie < ::Rails::Railtie
    config.forksafe = ActiveSupport::OrderedOptions.new

    # Before the app's config/initializers, so that a ForkSafe.configure
    # there has the last word.
    initializer "forksafe.configure", before: :load_config_initializers do |app|
      Railtie.apply(app.config.forksafe)
    end

    # After the initializers, which may have replaced Rails.logger.
    config.after_initialize { ForkSafe.config.app_logger = ::Rails.logger }

    def self.apply(options)
      ForkSafe.configure do |config|
        options.each do |name, value|
          unless Configuration::SETTINGS.include?(name.to_sym)
            raise ArgumentError, "config.forksafe.#{name}: no such setting " \
                                 "(there are #{Configuration::SETTINGS.join(", ")})"
          end

          config.public_send(:"#{name}=", value)
        end
      end
    end
  end
end
