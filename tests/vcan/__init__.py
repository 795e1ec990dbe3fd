"""Tests on real socketcan interfaces (vcan0, vcan1): run them with tools/vcan-vm.sh."""
