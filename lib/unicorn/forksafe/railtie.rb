# frozen_string_literal: true

require_relative "core"

module ForkSafe
  # In a Rails app: config.forksafe carries the settings of
  # ForkSafe.configure, and the gem logs through Rails.logger unless a
  # logger was set. Loaded by integrations/rails.rb when Rails is; nothing
  # here runs outside Rails.
  class Railtie < ::Rails::Railtie
    # config.forksafe: each setting goes to ForkSafe.config as it is
    # written, checked there, so the last one written wins wherever it is
    # (config/application.rb, an environment's file, an initializer, or
    # ForkSafe.configure). A name that is no setting raises at once.
    class Settings
      Configuration::SETTINGS.each do |name|
        define_method(name) { ForkSafe.config.public_send(name) }
        define_method(:"#{name}=") { |value| ForkSafe.config.public_send(:"#{name}=", value) }
      end

      private

      def method_missing(name, *)
        raise ArgumentError, "config.forksafe.#{name.to_s.chomp("=")}: no such setting " \
                             "(there are #{Configuration::SETTINGS.join(", ")})"
      end

      def respond_to_missing?(*) = false
    end

    # Rails.logger as it is when a line is logged: an app may replace it
    # in an initializer or after initialization.
    module RailsLogger
      def self.call = ::Rails.logger
    end

    config.forksafe = Settings.new
    ForkSafe.config.app_logger = RailsLogger
  end
end
