"""Helpers shared by the package and the zoo: argument checks, files, downloads, gradients,
resetting stateful layers."""
