//! The Salesforce side: talking to Salesforce's OAuth and identity endpoints, and the
//! emulator that stands in for Salesforce in demo mode and in every test.
