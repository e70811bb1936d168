# Thin wrapper over Meson.  The two commands a new machine needs:
#   make demo    install what is missing, build, prepare the default guest, boot it
#   make check   install what the tests need, build, run every suite
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all demo check guest lab clean bench

all:
	@scripts/install-deps.sh build
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD)
	@ninja -C $(BUILD)

guest: all
	@scripts/install-deps.sh guest
	@guest/build.sh $(BUILD)/guest

demo:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory guest
	@scripts/demo.sh

check:
	@scripts/check.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
