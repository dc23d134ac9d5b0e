import './base.css';
import './autopilot.css';
