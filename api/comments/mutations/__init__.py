"""The comments' mutations, one per module."""
