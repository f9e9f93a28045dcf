"""The accounts' mutations, one per module."""
