"""The markets' mutations (trading and market admin), one per module."""
