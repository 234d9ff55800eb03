# frozen_string_literal: true

# As deployed: curl -> nginx -> unicorn on a Unix socket. nginx reads the
# upstream's response until EOF, so a child holding the connection holds the
# user's page.
RSpec.describe "nginx in front of unicorn over a Unix socket", :e2e do
  def behind_nginx(gem:)
    start_nginx(start_unicorn(gem:, unix: true))
  end

  it "serves forking requests, normal and error, at once and intact" do
    nginx = behind_nginx(gem: true)
    %w[via=forksafe via=plain via=native].each do |query|
      normal = curl(nginx.port, "/fork?#{query}&life=6")
      error = curl(nginx.port, "/fork?#{query}&life=6&raise=1")
      expect([normal.first, error.first]).to all(be < 1), "#{query}: #{normal.first}s, #{error.first}s"
      expect(normal.drop(1)).to match(["200", /\Aforked \d+\n\z/])
      expect(error.drop(1)).to eq(["500", ""]) # unicorn's error response has no body
    end
  end

  it "without the gem, holds the user's error page until the child exits" do
    nginx = behind_nginx(gem: false)
    seconds, status, = curl(nginx.port, "/fork?via=plain&life=4&raise=1")
    expect(seconds).to be > 3.5
    expect(status).to eq("500")
  end
end
